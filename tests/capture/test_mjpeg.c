/* MJPEG decoding for UVC frames (cv/mjpeg.cpp): a 64x48 grey JPEG fixture (written by
 * OpenCV: a horizontal ramp of 4 grey levels per pixel and a white disk at (40, 24)) decodes to
 * those pixels; the same frame with its Huffman tables removed, as "AVI1" webcams send it,
 * decodes to exactly the same image through the standard tables; wrong sizes and garbage are
 * refused, cut frames do not crash. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/cv.h"

static uint8_t *load(size_t *size)
{
    const char *src = getenv("KINEMA_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/capture/fixtures/uvc/mjpeg_64x48.jpg", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("missing %s", path);
    uint8_t *b = malloc(4096);
    *size = fread(b, 1, 4096, f);
    fclose(f);
    return b;
}

/* The frame without its DHT segments. */
static size_t strip_dht(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 2, o = 2;
    memcpy(out, in, 2);
    while (i + 4 <= n && !(in[i] == 0xff && in[i + 1] == 0xda)) {
        size_t len = (size_t)(in[i + 2] << 8 | in[i + 3]);
        if (in[i + 1] != 0xc4) {
            memcpy(out + o, in + i, 2 + len);
            o += 2 + len;
        }
        i += 2 + len;
    }
    memcpy(out + o, in + i, n - i);
    return o + (n - i);
}

static void test_decode(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpeg = load(&n);
    uint8_t img[48 * 64], img2[48 * 80];
    assert_int_equal(km_cv_mjpeg_to_gray(jpeg, n, img, 64, 48, 64), KM_OK);
    assert_true(img[10 * 64 + 0] < 10);
    assert_true(abs(img[10 * 64 + 20] - 80) < 10);
    assert_true(abs(img[40 * 64 + 60] - 240) < 12);
    assert_true(img[24 * 64 + 40] > 245);
    /* the same without Huffman tables */
    uint8_t stripped[4096];
    size_t m = strip_dht(jpeg, n, stripped);
    assert_true(m < n);
    memset(img2, 0xaa, sizeof img2);
    assert_int_equal(km_cv_mjpeg_to_gray(stripped, m, img2, 64, 48, 80), KM_OK);
    for (int y = 0; y < 48; y++) {
        assert_memory_equal(img2 + y * 80, img + y * 64, 64);
        assert_int_equal(img2[y * 80 + 70], 0xaa); /* stride padding untouched */
    }
    /* wrong size, not a JPEG, bad arguments */
    assert_int_equal(km_cv_mjpeg_to_gray(jpeg, n, img, 32, 24, 32), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "64x48"));
    uint8_t junk[100];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(km_cv_mjpeg_to_gray(junk, sizeof junk, img, 64, 48, 64), KM_ERR_FORMAT);
    assert_int_equal(km_cv_mjpeg_to_gray(jpeg, n, img, 64, 48, 10), KM_ERR_INVALID_ARGUMENT);
    /* every cut of the frame: an error or a (partly grey) image, never a crash */
    for (size_t cut = 0; cut < n; cut += 7) {
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, jpeg, cut);
        km_status st = km_cv_mjpeg_to_gray(part, cut, img, 64, 48, 64);
        assert_true(st == KM_OK || st == KM_ERR_FORMAT);
        free(part);
    }
    free(jpeg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
