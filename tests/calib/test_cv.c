/* Tests of cv/cv.cpp, the OpenCV wrapper: PNG write -> grey read round trip, argument and
 * I/O errors as statuses (never exceptions), and a real JPEG of the data set. The rig reader
 * (km_cv_rig_read) is tested against our writer in test_rig.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kinema/cv.h"

static void temp_png(char *out, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/kinema_test_cv_%ld_%s.png", dir != NULL ? dir : "/tmp",
             (long)getpid(), tag);
}

static void test_gray_png_round_trip(void **state)
{
    (void)state;
    enum { W = 37, H = 23, STRIDE = 48 };
    uint8_t img[H * STRIDE];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < STRIDE; x++)
            img[y * STRIDE + x] = x < W ? (uint8_t)(x * 7 + y * 13) : 0xEE; /* padding */
    char path[256];
    temp_png(path, sizeof path, "gray");
    assert_int_equal(km_cv_write_png(path, img, W, H, STRIDE, 1), KM_OK);
    uint8_t *back = NULL;
    int w = 0, h = 0;
    assert_int_equal(km_cv_read_gray(path, &back, &w, &h), KM_OK);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    for (int y = 0; y < H; y++)
        assert_memory_equal(back + y * W, img + y * STRIDE, W);
    free(back);
    unlink(path);
}

static void test_bgr_png_reads_as_gray(void **state)
{
    (void)state;
    enum { W = 16, H = 8 };
    uint8_t img[H * W * 3];
    /* Grey BGR pixels (b = g = r) convert to the same grey level. */
    for (int i = 0; i < W * H; i++)
        img[3 * i] = img[3 * i + 1] = img[3 * i + 2] = (uint8_t)(i * 2);
    char path[256];
    temp_png(path, sizeof path, "bgr");
    assert_int_equal(km_cv_write_png(path, img, W, H, W * 3, 3), KM_OK);
    uint8_t *back = NULL;
    int w, h;
    assert_int_equal(km_cv_read_gray(path, &back, &w, &h), KM_OK);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    for (int i = 0; i < W * H; i++)
        assert_int_equal(back[i], (uint8_t)(i * 2));
    free(back);
    unlink(path);
}

static void test_errors(void **state)
{
    (void)state;
    uint8_t px[16] = {0};
    char path[256];
    temp_png(path, sizeof path, "bad");
    assert_int_equal(km_cv_write_png(path, px, 4, 4, 3, 1), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_cv_write_png(path, px, 2, 2, 2, 2), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_cv_write_png(path, NULL, 2, 2, 2, 1), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_cv_write_png("/nonexistent/dir/x.png", px, 4, 4, 4, 1), KM_ERR_IO);
    assert_non_null(strstr(km_last_error(), "/nonexistent/dir/x.png"));
    /* An unknown extension makes OpenCV throw: it must come back as a status. */
    assert_int_not_equal(km_cv_write_png("/tmp/kinema_test_cv.unknownext", px, 4, 4, 4, 1), KM_OK);

    uint8_t *back = (uint8_t *)1;
    int w = 1, h = 1;
    assert_int_equal(km_cv_read_gray("/nonexistent/dir/x.png", &back, &w, &h), KM_ERR_IO);
    assert_null(back);
    assert_int_equal(w, 0);
    /* A file that is not an image. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a png\n", f);
    fclose(f);
    assert_int_equal(km_cv_read_gray(path, &back, &w, &h), KM_ERR_IO);
    assert_null(back);
    unlink(path);
}

static void test_real_jpeg(void **state)
{
    (void)state;
    const char *data = getenv("KINEMA_DATA");
    if (data == NULL || *data == '\0')
        data = getenv("KINEMA_DATA_DEFAULT");
    char path[1024];
    snprintf(path, sizeof path, "%s/calibration/opencv_stereo_chessboard/left01.jpg",
             data != NULL ? data : "");
    if (data == NULL || access(path, R_OK) != 0) {
        print_message("skipped: %s not found (set KINEMA_DATA)\n", path);
        skip();
    }
    uint8_t *px = NULL;
    int w, h;
    assert_int_equal(km_cv_read_gray(path, &px, &w, &h), KM_OK);
    assert_int_equal(w, 640);
    assert_int_equal(h, 480);
    /* A chessboard photo: both dark and bright pixels. */
    int lo = 255, hi = 0;
    for (int i = 0; i < w * h; i++) {
        lo = px[i] < lo ? px[i] : lo;
        hi = px[i] > hi ? px[i] : hi;
    }
    assert_true(lo < 60 && hi > 180);
    free(px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray_png_round_trip),
        cmocka_unit_test(test_bgr_png_reads_as_gray),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_real_jpeg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
