/* tee_pubkey.c - `darknetp tee pubkey` (provision_cmd.h). */
#include "host/provision_cmd.h"

#include <stdio.h>

#include "host/device_key.h"
#include "host/tee_session.h"

int dz_tee_pubkey_main(int argc, char **argv)
{
    (void)argv;
    struct dk_error err = {{0}};
    struct dz_tee *t = NULL;
    uint8_t pub[DZ_X25519_BYTES], fp[DZ_FINGERPRINT_BYTES];
    char text[256], hex[DZ_HEX32_CHARS];
    if (argc != 3) {
        fprintf(stderr, "usage: darknetp tee pubkey > device.pub\n");
        return 2;
    }
    int rc = dz_tee_connect(&t, &err);
    if (rc == 0)
        rc = dz_tee_get_pubkey(t, pub, &err);
    dz_tee_close(t);
    if (rc == 0)
        rc = dz_pubkey_text(pub, text, sizeof text, &err);
    if (rc == 0)
        rc = dz_key_fingerprint(pub, fp, &err);
    if (rc != 0) {
        fprintf(stderr, "darknetp: %s\n", err.msg);
        return 1;
    }
    if (fputs(text, stdout) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "darknetp: cannot write the device key to stdout\n");
        return 1;
    }
    dz_hex(fp, sizeof fp, hex);
    fprintf(stderr, "device key fingerprint SHA256:%s\n", hex);
    return 0;
}
