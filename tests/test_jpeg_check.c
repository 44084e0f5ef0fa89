/*
 * test_jpeg_check.c - JPEGs that Debian's stb_image 2.27 would mishandle, refused before
 * it decodes them (darknet/jpeg_check.h), through dk_image_load.
 *
 * Each case edits one field of a small baseline JPEG that stb_image_write wrote: SOI,
 * APP0 at byte 2, DQT at 20, SOF0 at 154, one DHT of four tables at 173, SOS at 593 with
 * its entropy-coded data, EOI (the layout is asserted, not assumed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "darknet/image.h"
#include "darknet/jpeg_check.h"
#include "tests/helpers/image_refusal.h"
#include "tests/helpers/tmpdir.h"

enum { SOF = 154, DHT = 173, SOS = 593 };

struct jpeg {
    unsigned char *b;
    long n;   /* bytes */
    long eoi; /* offset of EOI */
};

static void write_file(const char *path, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(a, 1, na, f), na);
    if (nb)
        assert_int_equal(fwrite(b, 1, nb, f), nb);
    assert_int_equal(fclose(f), 0);
}

/* An 8 x 8 RGB baseline JPEG, read back whole. */
static struct jpeg make_jpeg(const struct tmp *t)
{
    char path[256];
    snprintf(path, sizeof path, "%s/good.jpg", t->dir);
    unsigned char px[8 * 8 * 3];
    for (int i = 0; i < (int)sizeof px; ++i)
        px[i] = (unsigned char)(i * 5);
    assert_int_not_equal(stbi_write_jpg(path, 8, 8, 3, px, 90), 0);
    struct jpeg j = {0};
    j.n = read_whole_file(path, &j.b);
    assert_true(j.n > SOS + 20);
    assert_true(j.b[SOF] == 0xFF && j.b[SOF + 1] == 0xC0);
    assert_true(j.b[DHT] == 0xFF && j.b[DHT + 1] == 0xC4);
    assert_true(j.b[SOS] == 0xFF && j.b[SOS + 1] == 0xDA);
    j.eoi = j.n - 2;
    assert_true(j.b[j.eoi] == 0xFF && j.b[j.eoi + 1] == 0xD9);
    return j;
}

/* Writes j with its scan (SOS to EOI) repeated `scans` times. */
static void write_scans(const char *path, const struct jpeg *j, size_t scans)
{
    size_t scan = (size_t)(j->eoi - SOS), n = SOS + scan * scans + 2;
    unsigned char *b = malloc(n);
    assert_non_null(b);
    memcpy(b, j->b, SOS);
    for (size_t i = 0; i < scans; ++i)
        memcpy(b + SOS + i * scan, j->b + SOS, scan);
    memcpy(b + n - 2, j->b + j->eoi, 2);
    write_file(path, b, n, NULL, 0);
    free(b);
}

/* Every case loads 3 channels, as the classifier does. */
#define ASSERT_REFUSED(path, text) ASSERT_IMAGE_REFUSED(path, 3, text)

/* A table of more than 256 codes overflowed stb's arrays (a wild read followed). */
static void test_dht_over_256_codes(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/dht.jpg", t->dir);
    struct dk_error err = {{0}};
    write_file(path, j.b, (size_t)j.n, NULL, 0);
    assert_int_equal(image_load_result(path, 3, &err), 0);

    /* The first table: its class and id at DHT + 4, its 16 counts after. */
    unsigned sum = 0;
    for (int i = 0; i < 16; ++i)
        sum += j.b[DHT + 5 + i];
    assert_true(sum + 255 > 256);
    j.b[DHT + 5 + 15] = (unsigned char)(j.b[DHT + 5 + 15] + 255);
    write_file(path, j.b, (size_t)j.n, NULL, 0);
    char want[96];
    snprintf(want, sizeof want, "DHT at byte %d, DC table 0) counts %u codes, at most 256", DHT,
             sum + 255);
    ASSERT_REFUSED(path, want);
    free(j.b);
}

/* stb skips padding between the segments before the frame, so the walk must too: a
 * table of too many codes after padding is still refused, and padding alone still loads. */
static void test_padding_before_frame(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/padded.jpg", t->dir);
    /* Three bytes of padding after APP0 (which ends at byte 20). */
    unsigned char *b = malloc((size_t)j.n + 3);
    assert_non_null(b);
    memcpy(b, j.b, 20);
    memcpy(b + 20, "\x00\x11\x22", 3);
    memcpy(b + 23, j.b + 20, (size_t)j.n - 20);
    write_file(path, b, (size_t)j.n + 3, NULL, 0);
    struct dk_error err = {{0}};
    if (image_load_result(path, 3, &err) != 0)
        fail_msg("%s", err.msg);
    b[3 + DHT + 5 + 15] = (unsigned char)(b[3 + DHT + 5 + 15] + 255);
    write_file(path, b, (size_t)j.n + 3, NULL, 0);
    char want[64];
    snprintf(want, sizeof want, "DHT at byte %d, DC table 0", DHT + 3);
    ASSERT_REFUSED(path, want);
    free(b);
    free(j.b);
}

/* A scan naming a table no DHT defined made stb decode with uninitialised memory. */
static void test_undefined_table(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/table.jpg", t->dir);
    /* SOS: length, Ns (SOS + 4), then (id, DC << 4 | AC) per component. */
    assert_int_equal(j.b[SOS + 4], 3);
    j.b[SOS + 6] = 0x20;
    write_file(path, j.b, (size_t)j.n, NULL, 0);
    char want[112];
    snprintf(want, sizeof want,
             "JPEG scan (SOS at byte %d) uses Huffman DC table 2, which no DHT before it defines",
             SOS);
    ASSERT_REFUSED(path, want);
    j.b[SOS + 6] = 0x03;
    write_file(path, j.b, (size_t)j.n, NULL, 0);
    ASSERT_REFUSED(path, "uses Huffman AC table 3");
    free(j.b);
}

/* Without a scan, stb returned the frame's uninitialised pixels. */
static void test_component_in_no_scan(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/noscan.jpg", t->dir);
    write_file(path, j.b, SOS, j.b + j.eoi, 2);
    char want[96];
    snprintf(want, sizeof want, "JPEG component 1 (id 1) is in no scan before EOI at byte %d", SOS);
    ASSERT_REFUSED(path, want);
    free(j.b);
}

/* stb decodes the whole image for every scan: scans are limited to
 * min(DK_JPEG_MAX_SCANS, 2^32 / samples), 256 for 8 x 8 x 3; the scan repeated that
 * often still loads, once more is refused. */
static void test_scan_budget(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/scans.jpg", t->dir);
    size_t scan = (size_t)(j.eoi - SOS);
    for (unsigned scans = DK_JPEG_MAX_SCANS; scans <= DK_JPEG_MAX_SCANS + 1; ++scans) {
        write_scans(path, &j, scans);
        struct dk_error err = {{0}};
        if (scans == DK_JPEG_MAX_SCANS) {
            if (image_load_result(path, 3, &err) != 0)
                fail_msg("%s", err.msg);
        } else {
            char want[112];
            snprintf(want, sizeof want, "JPEG has more than %u scans (SOS at byte %zu)",
                     DK_JPEG_MAX_SCANS, SOS + scan * DK_JPEG_MAX_SCANS);
            ASSERT_REFUSED(path, want);
        }
    }
    free(j.b);
}

/* The budget shrinks with the frame: 2^32 / (width x height x components) scans. The
 * frame's size is edited to 32768 x 16384 (3 x 2^29 samples: 2 scans); the check alone
 * judges the file, which stb could not decode any more. */
static void test_scan_budget_by_size(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/budget.jpg", t->dir);
    /* SOF: length, precision (SOF + 4), lines (SOF + 5), samples per line (SOF + 7). */
    memcpy(j.b + SOF + 5, "\x40\x00\x80\x00", 4);
    for (int scans = 2; scans <= 3; ++scans) {
        write_scans(path, &j, (size_t)scans);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        struct dk_error err = {{0}};
        assert_int_equal(dk_jpeg_check(f, path, &err), scans == 2 ? 0 : -1);
        if (scans == 3)
            assert_non_null(strstr(err.msg, "more than 2 scans"));
        assert_int_equal(ftell(f), 0);
        assert_int_equal(fclose(f), 0);
    }
    free(j.b);
}

/* A component whose quantisation table no DQT defined: stb dequantised with
 * uninitialised memory. The table id sits in the SOF's component entries. */
static void test_undefined_quantisation_table(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/dqt.jpg", t->dir);
    /* SOF + 10: component 1's id, sampling, table; component 2's table at SOF + 15. */
    j.b[SOF + 15] = 3;
    write_file(path, j.b, (size_t)j.n, NULL, 0);
    char want[120];
    snprintf(want, sizeof want,
             "JPEG scan (SOS at byte %d) codes component 2, whose quantisation table 3 no DQT "
             "before it defines",
             SOS);
    ASSERT_REFUSED(path, want);
    free(j.b);
}

/* stb reads the first marker after any FF fill bytes, so "FF FF D8" is a JPEG to it and
 * must be to the check: a table of too many codes behind one extra FF is refused. */
static void test_fill_before_soi(void **state)
{
    struct tmp *t = *state;
    struct jpeg j = make_jpeg(t);
    char path[256];
    snprintf(path, sizeof path, "%s/fill.jpg", t->dir);
    write_file(path, "\xff", 1, j.b, (size_t)j.n);
    struct dk_error err = {{0}};
    if (image_load_result(path, 3, &err) != 0)
        fail_msg("%s", err.msg);
    j.b[DHT + 5 + 15] = (unsigned char)(j.b[DHT + 5 + 15] + 255);
    write_file(path, "\xff", 1, j.b, (size_t)j.n);
    char want[64];
    snprintf(want, sizeof want, "DHT at byte %d, DC table 0", DHT + 1);
    ASSERT_REFUSED(path, want);
    free(j.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dht_over_256_codes, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_padding_before_frame, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_undefined_table, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_component_in_no_scan, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_scan_budget, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_scan_budget_by_size, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_undefined_quantisation_table, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_fill_before_soi, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
