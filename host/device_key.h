/*
 * device_key.h - a device's provisioning key as a text file (`device.pub`), the file
 * `darknetp tee pubkey` prints on the device and `darknetp seal` reads on the owner's machine:
 *
 *   # DarkneTZ device key (X25519), fingerprint SHA256:<64 hex digits>
 *   dz-x25519 <64 hex digits: the 32-byte X25519 public value (RFC 7748)>
 *
 * The fingerprint is SHA-256 of the 32 raw public bytes, the value the TA compares with a
 * sealed header's device_fingerprint (darknetz_ta.h, DZ_KEY_OWNER).
 */
#ifndef DZ_DEVICE_KEY_H
#define DZ_DEVICE_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "darknet/error.h"
#include "ta/include/darknetz_ta.h"

#define DZ_PUBKEY_TAG "dz-x25519"
#define DZ_FINGERPRINT_BYTES 32
/* Hex text of a fingerprint or key, with its NUL. */
#define DZ_HEX32_CHARS (2 * 32 + 1)

/* SHA-256 of the public value. Returns 0, or -1 with a message in err (libcrypto failed). */
int dz_key_fingerprint(const uint8_t pub[DZ_X25519_BYTES], uint8_t fp[DZ_FINGERPRINT_BYTES],
                       struct dk_error *err);

/* Lower-case hex of @n bytes into @out (2n + 1 chars with the NUL). */
void dz_hex(const uint8_t *bytes, size_t n, char *out);

/*
 * dz_pubkey_text - the two lines of a device.pub file (each ending in '\n') for @pub into
 * @out of @size bytes (160 are enough). Returns 0, or -1 with a message in err.
 */
int dz_pubkey_text(const uint8_t pub[DZ_X25519_BYTES], char *out, size_t size,
                   struct dk_error *err);

/*
 * dz_pubkey_read - the public value of a device.pub file at @path. Blank lines and lines
 * starting with '#' are comments; exactly one line must be `dz-x25519 <64 hex digits>`
 * (trailing spaces and a CR allowed). A comment `fingerprint SHA256:<hex>` must match the
 * key. Refused, with a message naming the file and line: an unreadable file, a line of
 * another form, a key of another length, two keys, no key, a fingerprint that does not
 * match. Returns 0, or -1 with the message in err.
 */
int dz_pubkey_read(const char *path, uint8_t pub[DZ_X25519_BYTES], struct dk_error *err);

#endif
