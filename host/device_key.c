/* device_key.c - the device.pub text file (device_key.h). */
#include "host/device_key.h"

#include "darknet/user_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#define LINE_MAX_CHARS 512

int dz_key_fingerprint(const uint8_t pub[DZ_X25519_BYTES], uint8_t fp[DZ_FINGERPRINT_BYTES],
                       struct dk_error *err)
{
    unsigned int len = 0;
    if (EVP_Digest(pub, DZ_X25519_BYTES, fp, &len, EVP_sha256(), NULL) != 1 ||
        len != DZ_FINGERPRINT_BYTES)
        return dk_fail(err, "SHA-256 of the device key failed (libcrypto)");
    return 0;
}

void dz_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

int dz_pubkey_text(const uint8_t pub[DZ_X25519_BYTES], char *out, size_t size, struct dk_error *err)
{
    uint8_t fp[DZ_FINGERPRINT_BYTES];
    char fp_hex[DZ_HEX32_CHARS], key_hex[DZ_HEX32_CHARS];
    if (dz_key_fingerprint(pub, fp, err) != 0)
        return -1;
    dz_hex(fp, sizeof fp, fp_hex);
    dz_hex(pub, DZ_X25519_BYTES, key_hex);
    int n = snprintf(
        out, size, "# DarkneTZ device key (X25519), fingerprint SHA256:%s\n" DZ_PUBKEY_TAG " %s\n",
        fp_hex, key_hex);
    if (n < 0 || (size_t)n >= size)
        return dk_fail(err, "device key text: buffer of %zu bytes too small", size);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a run of hex digits ending at the first space or NUL into out (up to max bytes).
 * Returns the bytes decoded, or -1 for a non-hex character, an odd count or too many. */
static long unhex(const char *s, uint8_t *out, size_t max, size_t *digits)
{
    size_t n = 0;
    while (s[n] && s[n] != ' ' && s[n] != '\t')
        n++;
    *digits = n;
    if (n % 2)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        if (i / 2 < max)
            out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

static void chomp(char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        line[--n] = '\0';
}

/* A `dz-x25519 HEX` line into pub. */
static int key_line(const char *path, int lineno, const char *line, uint8_t *pub,
                    struct dk_error *err)
{
    const char *hex = line + strlen(DZ_PUBKEY_TAG);
    if (*hex != ' ' && *hex != '\t')
        return dk_fail(err, "%s:%d: expected '" DZ_PUBKEY_TAG " <64 hex digits>'", path, lineno);
    while (*hex == ' ' || *hex == '\t')
        hex++;
    size_t digits = 0;
    long n = unhex(hex, pub, DZ_X25519_BYTES, &digits);
    if (n < 0)
        return dk_fail(err, "%s:%d: the key is not hex digits", path, lineno);
    if (hex[digits] != '\0')
        return dk_fail(err, "%s:%d: unexpected text after the key", path, lineno);
    if (n != DZ_X25519_BYTES)
        return dk_fail(err,
                       "%s:%d: the key has %ld bytes; an X25519 public key has %d (64 hex "
                       "digits)",
                       path, lineno, n, DZ_X25519_BYTES);
    return 0;
}

/* A `fingerprint SHA256:HEX` comment, if the line has one: its bytes into fp. */
static int comment_fingerprint(const char *path, int lineno, const char *line, uint8_t *fp,
                               bool *found, struct dk_error *err)
{
    static const char tag[] = "fingerprint SHA256:";
    const char *at = strstr(line, tag);
    if (!at)
        return 0;
    size_t digits = 0;
    if (unhex(at + sizeof tag - 1, fp, DZ_FINGERPRINT_BYTES, &digits) != DZ_FINGERPRINT_BYTES)
        return dk_fail(err, "%s:%d: the fingerprint is not 64 hex digits", path, lineno);
    *found = true;
    return 0;
}

int dz_pubkey_read(const char *path, uint8_t pub[DZ_X25519_BYTES], struct dk_error *err)
{
    char line[LINE_MAX_CHARS];
    uint8_t said[DZ_FINGERPRINT_BYTES], fp[DZ_FINGERPRINT_BYTES];
    bool has_key = false, has_fp = false;
    int lineno = 0, fp_line = 0, rc = 0;
    FILE *f = NULL;
    /* A device key file is two short lines: a FIFO or a device must not block or feed us. */
    if (dk_user_file_fopen(path, "a device key file", 64 * 1024, &f, NULL, err) != 0)
        return -1;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = dk_fail(err, "%s:%d: line too long for a device key file", path, lineno);
            break;
        }
        chomp(line);
        if (line[0] == '\0')
            continue;
        if (line[0] == '#') {
            if (!has_fp) {
                rc = comment_fingerprint(path, lineno, line, said, &has_fp, err);
                fp_line = lineno;
            }
            continue;
        }
        if (strncmp(line, DZ_PUBKEY_TAG, strlen(DZ_PUBKEY_TAG)) != 0) {
            rc = dk_fail(err,
                         "%s:%d: expected '" DZ_PUBKEY_TAG
                         " <64 hex digits>' (the output of `darknetp tee pubkey` on the device)",
                         path, lineno);
            break;
        }
        if (has_key) {
            rc = dk_fail(err, "%s:%d: a second key; a device key file holds one", path, lineno);
            break;
        }
        rc = key_line(path, lineno, line, pub, err);
        has_key = rc == 0;
    }
    if (rc == 0 && ferror(f))
        rc = dk_fail(err, "%s: cannot read", path);
    fclose(f);
    if (rc != 0)
        return -1;
    if (!has_key)
        return dk_fail(err,
                       "%s: no '" DZ_PUBKEY_TAG
                       " <64 hex digits>' line (make it with `darknetp tee pubkey` on the device)",
                       path);
    if (has_fp) {
        if (dz_key_fingerprint(pub, fp, err) != 0)
            return -1;
        if (memcmp(fp, said, sizeof fp) != 0)
            return dk_fail(err,
                           "%s:%d: the fingerprint does not match the key (the file was altered "
                           "or mixed up)",
                           path, fp_line);
    }
    return 0;
}
