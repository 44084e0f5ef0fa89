#include "tests/helpers/bars.h"

#include <stdint.h>
#include <stdio.h>

#include "tests/helpers/tmpdir.h"

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

void bars_draw(unsigned seed, int cls, unsigned char *px)
{
    unsigned s = seed * 2654435761u + 12345u;
    for (int i = 0; i < BARS_SIDE * BARS_SIDE; i++) {
        s = s * 1103515245u + 12345u;
        px[i] = (unsigned char)((s >> 16) % 90);
    }
    int pos = 2 + (int)(seed % 3);
    for (int k = 0; k < BARS_SIDE; k++) {
        int r = cls == 0 ? pos : cls == 1 ? BARS_SIDE - 1 - pos : k;
        int c = cls == 2 ? pos : cls == 3 ? BARS_SIDE - 1 - pos : k;
        px[r * BARS_SIDE + c] = 230;
    }
}

int bars_write_idx(const char *dir, const char *name, int count, unsigned seed0)
{
    char path[4096], lpath[4096];
    snprintf(path, sizeof path, "%s/%s-images.idx", dir, name);
    snprintf(lpath, sizeof lpath, "%s/%s-labels.idx", dir, name);
    FILE *f = fopen(path, "wb"), *l = fopen(lpath, "wb");
    int rc = (f && l) ? 0 : -1;
    if (rc == 0) {
        put_be32(f, 0x00000803); /* unsigned bytes, 3 dimensions */
        put_be32(f, (uint32_t)count);
        put_be32(f, BARS_SIDE);
        put_be32(f, BARS_SIDE);
        put_be32(l, 0x00000801); /* unsigned bytes, 1 dimension */
        put_be32(l, (uint32_t)count);
        unsigned char px[BARS_SIDE * BARS_SIDE];
        for (int i = 0; i < count; i++) {
            bars_draw(seed0 + (unsigned)i, i % BARS_CLASSES, px);
            fwrite(px, 1, sizeof px, f);
            fputc(i % BARS_CLASSES, l);
        }
    }
    if (f && fclose(f) != 0)
        rc = -1;
    if (l && fclose(l) != 0)
        rc = -1;
    return rc;
}

int bars_write_data_file(const char *dir)
{
    static const char data[] = "classes=4\n"
                               "train=train-images.idx\ntrain_labels=train-labels.idx\n"
                               "valid=valid-images.idx\nvalid_labels=valid-labels.idx\n"
                               "names=bars.names\nbackup=backup\ntop=2\n";
    if (write_text_file(dir, "bars.data", data, NULL, 0) != 0)
        return -1;
    return write_text_file(dir, "bars.names", "top\nbottom\nleft\nright\n", NULL, 0);
}
